"""The vocabulary: annotation keys, their value grammars, and the knowledge kept as data."""
