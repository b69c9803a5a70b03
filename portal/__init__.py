"""The portal: server-rendered French pages for families, a client of the gateway's public API.

It holds no business data: every page is built from what the gateway answers for the
visitor's session cookie.
"""
