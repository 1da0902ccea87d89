"""Webhooks by the Standard Webhooks specification: subscriptions, signing, SSRF guard, delivery."""
