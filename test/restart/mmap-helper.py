# mmap-helper.py PATH OFFSET HEX: write HEX at OFFSET of PATH through a shared mapping, msync it, then
# print the sha256 of the whole file read through a new mapping. For the random I/O checker of
# test/restart (Node has no mmap). Any failure: a traceback and a non-zero exit.
import hashlib
import mmap
import os
import sys

path, off, data = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
fd = os.open(path, os.O_RDWR)
try:
    size = os.fstat(fd).st_size
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    m[off:off + len(data)] = data
    m.flush()
    m.close()
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    print(hashlib.sha256(m[:]).hexdigest())
    m.close()
finally:
    os.close(fd)
