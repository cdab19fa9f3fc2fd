"""The learning loop: features, performance models (scikit-learn), training, evaluation — pure,
no database (serving the active version from the database is app/services/registry.py)."""
