"""Prefect flows of the house-price pipeline and their command line (`python -m flows`)."""
