"""Tests for mini-LIBERO (snapflow.sim)."""
