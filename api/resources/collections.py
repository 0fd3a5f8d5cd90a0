from flask import Blueprint

bp = Blueprint("collections", __name__, url_prefix="/collections")
