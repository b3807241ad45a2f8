package preflight

import "encoding/binary"

// Layout of a struct linux_dirent64, as getdents64 fills it:
// d_ino uint64, d_off int64, d_reclen uint16, d_type uint8, d_name [].
const (
	direntReclenOff = 16
	direntTypeOff   = 18
	direntNameOff   = 19
)

// firstEntryType walks the linux_dirent64 records in buf and returns the
// d_type of the first entry other than "." and "..". Those two are skipped:
// many filesystems (xfs among them) make them up as DT_DIR even when they
// store no file types.
func firstEntryType(buf []byte) (typ uint8, found bool) {
	for off := 0; off+direntNameOff <= len(buf); {
		reclen := int(binary.NativeEndian.Uint16(buf[off+direntReclenOff:]))
		if reclen < direntNameOff || off+reclen > len(buf) {
			return 0, false
		}
		name := buf[off+direntNameOff : off+reclen]
		for i, b := range name {
			if b == 0 {
				name = name[:i]
				break
			}
		}
		if n := string(name); n != "." && n != ".." {
			return buf[off+direntTypeOff], true
		}
		off += reclen
	}
	return 0, false
}

// dtUnknown is DT_UNKNOWN: the filesystem did not say what the entry is.
const dtUnknown = 0
