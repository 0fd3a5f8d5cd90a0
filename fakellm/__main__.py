"""``python -m fakellm``: see :mod:`fakellm.cli`."""

from .cli import main

if __name__ == "__main__":
    main()
