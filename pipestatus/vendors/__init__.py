"""Vendor adapters: one module per vendor, each with its wire schema, status table,
pure normalize functions and a thin adapter class."""
