from flask import Blueprint

bp = Blueprint("criteria", __name__, url_prefix="/criteria")
