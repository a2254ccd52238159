"""Production HTTP server for a trained model: GET /health and POST /predict."""

__version__ = "0.1.0"
