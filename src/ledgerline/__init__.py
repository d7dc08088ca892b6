"""Ledgerline: a self-hosted invoicing data service."""

__version__ = "0.1.0"
