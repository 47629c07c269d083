package pgwh

// IsDataError exposes isDataError to the external tests.
var IsDataError = isDataError

// IsNoTable exposes isNoTable to the external tests.
var IsNoTable = isNoTable
