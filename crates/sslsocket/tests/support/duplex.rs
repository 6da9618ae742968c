//! A socket in memory for the core's duplex reads ([`SslCore::read_from_duplex`]), and one
//! read of a core through it: what the engine sent while reading, and what waits after.

use std::io::{self, Read, Write};

use sslsocket::core::SslCore;

/// How many reads one [`read_duplex`] may take before it counts as stuck.
const MAX_READS: usize = 1000;

/// Reads what `input` holds (then `WouldBlock`), keeps what is written to it.
pub struct MemorySocket<'a> {
    pub input: &'a mut Vec<u8>,
    pub output: &'a mut Vec<u8>,
}

impl Read for MemorySocket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        Ok(n)
    }
}

impl Write for MemorySocket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What one core did with `input` read through a duplex socket: the bytes it sent to the
/// socket while reading, then the bytes waiting to be written after it.
pub fn read_duplex(
    core: &mut SslCore,
    mut input: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>), Box<dyn std::error::Error>> {
    let mut sent = Vec::new();
    for _ in 0..MAX_READS {
        if input.is_empty() || !core.wants_read() {
            break;
        }
        let mut socket = MemorySocket {
            input: &mut input,
            output: &mut sent,
        };
        match core.read_from_duplex(&mut socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // A closed core takes no input: it sent nothing.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => break,
            Err(e) => return Err(e.into()),
        }
    }
    let mut waiting = Vec::new();
    core.poll_transmit(&mut waiting);
    Ok((sent, waiting))
}
