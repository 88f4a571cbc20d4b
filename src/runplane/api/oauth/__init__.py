"""The OAuth2 token endpoints: client credentials and revocation (RFC 6749, RFC 7009)."""
