"""Supervision primitives with Erlang/OTP semantics on asyncio: supervisors, dynamic supervisors, a registry."""
