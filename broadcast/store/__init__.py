"""Storage: the database, its models and migrations, sequences, locks, pages of rows."""
