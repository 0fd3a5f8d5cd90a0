"""llm_configs.api_key: encrypt the provider keys stored in plaintext

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02 14:10:00.000000

Provider keys are now Fernet tokens (services.crypto) behind a `fernet:` prefix. This encrypts every
row without the prefix with the current key; the downgrade decrypts them again. With neither
ASSAY_ENCRYPTION_KEYS nor ASSAY_SECRET_KEY set, the only key would be this host's key file, which the
API and workers elsewhere (other containers) may not share: the rows are then left as they are (still
readable; `assay rotate-keys` encrypts them once a key is set) rather than made unreadable.
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_configs = sa.table("llm_configs", sa.column("id", sa.Integer), sa.column("api_key", sa.Text))


def _rewrite(change) -> None:  # type: ignore[no-untyped-def]
    conn = op.get_bind()
    rows = conn.execute(sa.select(_configs.c.id, _configs.c.api_key).where(_configs.c.api_key.is_not(None))).all()
    for row_id, stored in rows:
        new = change(stored)
        if new != stored:
            conn.execute(_configs.update().where(_configs.c.id == row_id).values(api_key=new))


def upgrade() -> None:
    from services.crypto import PREFIX, keyring

    if not keyring().configured:
        logging.getLogger("alembic").warning(
            "provider keys left unencrypted: set ASSAY_ENCRYPTION_KEYS or ASSAY_SECRET_KEY, then run assay rotate-keys"
        )
        return
    _rewrite(lambda stored: stored if stored.startswith(PREFIX) else keyring().encrypt(stored))


def downgrade() -> None:
    from services.crypto import keyring

    _rewrite(keyring().decrypt)
