"""Who is calling and what they may do: principals, credentials, policy, rate limits."""
