package remote

// LogoutResult is what a provider's Logout did at the provider; deleting the stored login is the caller's.
type LogoutResult struct {
	// Revoked: the provider confirmed the token is dead.
	Revoked bool
	// Note says what was not done and what the user can do (revoke in the account's settings, how long the
	// token lives on).
	Note string
}
