"""The pipeline's capabilities as packages; each keeps plain functions apart from its Prefect tasks.

Imports point down only: lifecycle (MLflow records, registry, gate, scoring) -> price; capability packages
(price, classify, automl, dnn) -> training, houses -> core.
"""
