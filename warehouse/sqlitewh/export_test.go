package sqlitewh

// IsDataError exposes isDataError to the external tests.
var IsDataError = isDataError

// ExecForTest runs statements on w's write connection.
func ExecForTest(w *Warehouse, stmts string) error {
	_, err := w.wdb.Exec(stmts)
	return err
}
