"""The learning loop: features, performance models (scikit-learn), training, the registry."""
