"""hvguard's one HTTPS layer (aiohttp): mutual TLS only, peer-certificate identity, TOTP for
administrative calls. The image library serves on it; the dashboard will too."""
