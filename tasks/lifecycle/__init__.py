"""The model lifecycle on MLflow: experiment records, the registry with its promotion gate, data
validation against the champion's training data, and batch scoring with a registered model.

A layer above the capability packages: it may import price (the model it registers), never the reverse.
Prefect runs the work; MLflow remembers its results.
"""
