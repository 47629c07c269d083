package pgwh

// IsDataError exposes isDataError to the external tests.
var IsDataError = isDataError
