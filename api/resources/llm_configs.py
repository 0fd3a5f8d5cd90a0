from flask import Blueprint

bp = Blueprint("llm_configs", __name__, url_prefix="/llm_configs")
