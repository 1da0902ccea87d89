"""Bulk import of catalog and opening stock from CSV: streamed, batched, idempotent."""
