"""Stage functions of the house-price pipeline, each usable without Prefect."""
