"""Node Feature Discovery interop: its rule language, its feature model, its artifacts."""
