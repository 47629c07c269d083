package fault

import (
	"errors"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/warehouse"
)

// knownPermanent lists the errors of sluice's packages that mean the data
// or the configuration is wrong:
//
//   - *format.RecordError: the object does not decode or cast (including
//     limits hit) — except a read failure inside one (format.IsReadFailure),
//     which is the store or the network failing mid-object;
//   - warehouse.ErrInvalidData: the warehouse rejects the rows;
//   - event.ErrNotANotification: a message on a notification queue is not
//     an S3 event notification in any dialect sluice reads.
//
// fault imports only these small packages; other producers of permanent
// errors (a deleted object, a missing table) mark them with Permanent where
// they know the meaning.
func knownPermanent(err error) bool {
	if format.IsReadFailure(err) {
		return false // the store or the network failed mid-object: not the data
	}
	var re *format.RecordError
	return errors.As(err, &re) || errors.Is(err, warehouse.ErrInvalidData) || errors.Is(err, event.ErrNotANotification)
}
