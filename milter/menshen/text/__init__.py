"""Text normalisation shared by wordlist terms and message text."""
