package sqlitestate

// Migrations returns the migrations, for tests of old databases.
func Migrations() []string { return migrations }
