"""Crawl jobs shared by workers on several machines: a per-DID job table and request budgets in the database."""
