"""The ground floor: errors, masking and other leaves that every layer may import.

Imports nothing of the project (import-linter keeps it so)."""
