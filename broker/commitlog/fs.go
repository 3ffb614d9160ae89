package commitlog

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File is the part of an open file the log uses. Implementations must allow
// ReadAt concurrently with Write, WriteAt and Sync (as *os.File does).
type File interface {
	io.ReaderAt
	io.Writer
	io.WriterAt
	// Sync flushes the file's data to stable storage (fsync).
	Sync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	Close() error
}

// FS is the one way the package reaches the disk, so that tests can inject
// faults (failed fsync, short writes, crashes between renames). Paths are
// operating-system paths, as for package os.
type FS interface {
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	MkdirAll(path string, perm fs.FileMode) error
	Remove(name string) error
	RemoveAll(path string) error
	Rename(oldpath, newpath string) error
	ReadDir(name string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes the directory's entries (created, removed and renamed
	// files) durable.
	SyncDir(dir string) error
}

// OSFS returns the FS of the operating system.
func OSFS() FS { return osFS{} }

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) RemoveAll(path string) error                  { return os.RemoveAll(path) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// readFull reads exactly len(b) bytes at off, or fails (io.ErrUnexpectedEOF
// when the file is shorter).
func readFull(f io.ReaderAt, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// writeFile creates name with data, fsyncs it, renames it into place over
// final and fsyncs the directory: readers see either the old or the new file.
func writeFileAtomic(fsys FS, dir, tmp, final string, data []byte) error {
	f, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		fsys.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		fsys.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		fsys.Remove(tmp)
		return err
	}
	if err := fsys.Rename(tmp, final); err != nil {
		fsys.Remove(tmp)
		return err
	}
	return fsys.SyncDir(dir)
}

// readWholeFile reads a small file entirely.
func readWholeFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	if err := readFull(f, b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// WriteFileAtomic durably replaces path with data: path+".tmp" is written
// and fsynced, renamed over path, and the directory is fsynced, so a crash
// leaves either the old or the new content. Used for small metadata files.
func WriteFileAtomic(fsys FS, path string, data []byte) error {
	return writeFileAtomic(fsys, filepath.Dir(path), path+tmpSuffix, path, data)
}

// ReadFile reads a small file entirely through fsys.
func ReadFile(fsys FS, name string) ([]byte, error) { return readWholeFile(fsys, name) }
