from flask import Blueprint

bp = Blueprint("criterion_sets", __name__, url_prefix="/criterion_sets")
