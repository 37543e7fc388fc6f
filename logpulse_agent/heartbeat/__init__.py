"""Heartbeats: report health, deliver action results, receive pending actions."""
