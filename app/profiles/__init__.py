"""The kernel profiles shipped with the package, one JSON file per profile named after it
(docs/profiles.md). Read them with `app.profilespec.load_shipped_profile`."""
