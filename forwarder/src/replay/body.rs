//! An object's body on its way from the task that receives it from S3 to the thread that reads it, read
//! ahead by at most a number of bytes, not of pieces: a piece is whatever the HTTP client had (a few KiB
//! from a slow connection, some hundred KiB from a fast one), so a count of pieces bounds nothing. The bytes
//! are held as permits of a semaphore: the receiving task takes a piece's length in permits before it sends
//! the piece, and the reader gives them back once it has read the piece, so what is buffered between them
//! never passes the bound, whatever the object's size (a piece larger than the bound goes alone).

use std::io::{self, Read};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Pieces in the channel at most, whatever their size: empty pieces cost no bytes but are not free either.
const PIECES_AHEAD: usize = 64;

type Piece = (io::Result<Bytes>, Option<OwnedSemaphorePermit>);

/// The sending half, for the task that receives the body.
#[derive(Debug)]
pub struct BodySender {
    tx: mpsc::Sender<Piece>,
    room: Arc<Semaphore>,
    ahead: u32,
}

/// The receiving half: a blocking [`Read`] over the pieces, for the reading thread.
#[derive(Debug)]
pub struct Body {
    rx: mpsc::Receiver<Piece>,
    current: Bytes,
    /// The bytes of `current`, given back once it is read.
    held: Option<OwnedSemaphorePermit>,
    room: Arc<Semaphore>,
    ahead: u32,
}

/// A body read ahead by at most `ahead` bytes (at least one).
pub fn channel(ahead: u32) -> (BodySender, Body) {
    let ahead = ahead.max(1);
    let room = Arc::new(Semaphore::new(ahead as usize));
    let (tx, rx) = mpsc::channel(PIECES_AHEAD);
    let sender = BodySender {
        tx,
        room: Arc::clone(&room),
        ahead,
    };
    let body = Body {
        rx,
        current: Bytes::new(),
        held: None,
        room,
        ahead,
    };
    (sender, body)
}

/// The reader is gone: nothing more needs to be received.
#[derive(Debug)]
pub struct Closed;

impl BodySender {
    /// Waits until the piece fits in what is read ahead, then hands it over.
    pub async fn send(&self, piece: io::Result<Bytes>) -> Result<(), Closed> {
        let bytes = match &piece {
            Ok(piece) => u32::try_from(piece.len()).unwrap_or(u32::MAX).min(self.ahead),
            Err(_) => 0,
        };
        let permit = if bytes == 0 {
            None
        } else {
            // The semaphore is never closed; an error would only mean that, and then the reader is gone too.
            let permit = Arc::clone(&self.room)
                .acquire_many_owned(bytes)
                .await
                .map_err(|_| Closed)?;
            Some(permit)
        };
        self.tx.send((piece, permit)).await.map_err(|_| Closed)
    }
}

impl Body {
    /// Bytes received and not yet read: never more than the bound given to [`channel`], except for a
    /// single piece larger than it.
    pub fn buffered(&self) -> usize {
        (self.ahead as usize).saturating_sub(self.room.available_permits())
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            // The piece is read: its bytes make room for the next ones.
            self.held = None;
            match self.rx.blocking_recv() {
                Some((Ok(piece), permit)) => {
                    self.current = piece;
                    self.held = permit;
                }
                Some((Err(err), _)) => return Err(err),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn what_is_read_ahead_is_bounded_by_bytes_however_large_the_object() {
        const PIECE: usize = 16 << 10;
        const AHEAD: u32 = 64 << 10;
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (tx, mut body) = channel(AHEAD);
        // 16 MiB in 1024 pieces, sent as fast as the bound allows.
        let sending = std::thread::spawn(move || {
            runtime.block_on(async move {
                for i in 0..1024u32 {
                    let piece = Bytes::from(vec![(i % 251) as u8; PIECE]);
                    tx.send(Ok(piece)).await.unwrap();
                }
            });
        });
        // The sender fills what may be read ahead, then waits: however long it is given, no more comes.
        while body.buffered() < AHEAD as usize {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(body.buffered(), AHEAD as usize);
        let mut read = 0usize;
        let mut buf = vec![0u8; 4096];
        loop {
            assert!(
                body.buffered() <= AHEAD as usize,
                "{} bytes buffered",
                body.buffered()
            );
            let n = body.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == ((read / PIECE) % 251) as u8));
            read += n;
        }
        sending.join().unwrap();
        assert_eq!(read, 1024 * PIECE);
        assert_eq!(body.buffered(), 0);
    }

    #[test]
    fn a_piece_larger_than_the_bound_goes_alone() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (tx, mut body) = channel(10);
        let sending = std::thread::spawn(move || {
            runtime.block_on(async move {
                tx.send(Ok(Bytes::from_static(b"0123456789abcdef")))
                    .await
                    .unwrap();
                tx.send(Ok(Bytes::from_static(b"xy"))).await.unwrap();
                tx.send(Err(io::Error::other("S3 went away"))).await.unwrap();
            });
        });
        let mut out = Vec::new();
        let err = body.read_to_end(&mut out).unwrap_err();
        assert_eq!(out, b"0123456789abcdefxy");
        assert_eq!(err.to_string(), "S3 went away");
        assert_eq!(body.buffered(), 0);
        sending.join().unwrap();
    }

    #[test]
    fn a_reader_gone_closes_the_sender() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (tx, body) = channel(4);
        drop(body);
        runtime.block_on(async move {
            assert!(tx.send(Ok(Bytes::from_static(b"ab"))).await.is_err());
        });
    }
}
