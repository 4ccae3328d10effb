"""Identity: how a person proves who they are (throttled passwords, OpenID Connect per
organisation, passkeys). Accounts, memberships and mandates stay in consensus.services."""
