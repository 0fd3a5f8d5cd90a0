FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY workers workers
COPY models models
COPY services services
COPY llmcalls llmcalls
COPY fakellm fakellm
COPY cli cli
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["assay", "api", "--host", "0.0.0.0", "--port", "8000"]
