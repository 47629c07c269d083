package httpsource

import (
	"bytes"
	"fmt"
)

// inspect classifies a whole body as scanPage does while streaming.
func inspect(body []byte, itemsPath string) (shape, error) {
	info, err := scanPage(bytes.NewReader(body), itemsPath, "")
	if err != nil {
		return shape{}, err
	}
	return info.shape, info.shapeErr
}

// cursorAt reads the next cursor of a whole body as scanPage does while
// streaming.
func cursorAt(body []byte, path string) (string, bool, error) {
	if err := checkPath(path); err != nil {
		return "", false, err
	}
	info, err := scanPage(bytes.NewReader(body), "", path)
	if err != nil {
		return "", false, fmt.Errorf("reading: %v", err)
	}
	return info.cursor, info.cursorOK, info.cursorErr
}
