"""Reports: MLflow -> tidy DataFrame -> statistics, figures, tables -> reports/<study>/.

Reads MLflow and nothing else, so it works on a machine that has only the tracking
store; it never imports the harness.
"""
