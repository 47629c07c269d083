package store

import (
	"testing"
)

func TestTempNamesAreNamesNoKeyCanHave(t *testing.T) {
	for range 100 {
		n := tempName()
		if !isTempName(n) {
			t.Fatalf("isTempName(%q) = false for a name tempName made", n)
		}
		if ValidateKey(n) == nil || ValidateKey("d/"+n) == nil {
			t.Fatalf("temporary name %q is a valid key, so a user file could have it", n)
		}
	}
	for _, name := range []string{
		"export.0123456789abcdef.tmp",       // fileblob's old shape: a user file now
		"a.csv.18c2f5e0a1b2c3d4.tmp",        //
		".sluice\\0123456789ABCDEF.tmp",     // upper-case hex
		".sluice\\0123456789abcde.tmp",      // 15 digits
		".sluice\\0123456789abcdef.tmpx",    //
		"x.sluice\\0123456789abcdef.tmp",    //
		".sluice\\0123456789abcdef.tmp.csv", //
	} {
		if isTempName(name) {
			t.Errorf("isTempName(%q) = true; only names tempName makes may be swept", name)
		}
	}
}
