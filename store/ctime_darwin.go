//go:build darwin

package store

import (
	"io/fs"
	"syscall"
)

func identityOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	csec, cnsec := st.Ctimespec.Unix()
	return fileID{
		dev: uint64(st.Dev), ino: uint64(st.Ino), size: fi.Size(),
		mtime: fi.ModTime().UnixNano(), ctime: csec*1e9 + cnsec,
	}, true
}
