//! A driver for a made-up line-scan image sensor on an SPI bus.
//!
//! The protocol, one SPI transaction (chip select held low) per row:
//!
//! | direction | bytes | meaning |
//! |---|---|---|
//! | controller → sensor | 1 | [`READ_LINE`] |
//! | controller → sensor | 2 | row index, big-endian |
//! | sensor → controller | `width` | the row's pixels, 8-bit grey, left to right |
//!
//! The sensor has no notion of a frame: the controller asks for rows in any
//! order. [`crate::Denoiser::run`] asks for them top to bottom, the order the
//! streaming network consumes them.

use embedded_hal::spi::{Operation, SpiDevice};

use crate::Error;

/// Command byte that starts a row read.
pub const READ_LINE: u8 = 0x4C;

/// The sensor behind an `embedded-hal` 1.0 [`SpiDevice`].
///
/// Taking a `SpiDevice` (not a bus) leaves chip select and bus sharing to
/// the HAL, so the driver only describes the transaction.
#[derive(Debug)]
pub struct LineSensor<SPI> {
    spi: SPI,
}

impl<SPI: SpiDevice> LineSensor<SPI> {
    /// A driver talking to the sensor through `spi`.
    pub fn new(spi: SPI) -> Self {
        Self { spi }
    }

    /// Reads row `row` into `line`, one byte per pixel; the sensor sends
    /// `line.len()` pixels.
    ///
    /// Command and read share one transaction so that no other device on
    /// the bus can come between them.
    pub fn read_line(&mut self, row: u16, line: &mut [u8]) -> Result<(), Error<SPI::Error>> {
        let [hi, lo] = row.to_be_bytes();
        self.spi
            .transaction(&mut [
                Operation::Write(&[READ_LINE, hi, lo]),
                Operation::Read(line),
            ])
            .map_err(Error::Spi)
    }

    /// Gives the SPI device back (to share the bus differently, or to check
    /// a test double's expectations).
    pub fn release(self) -> SPI {
        self.spi
    }
}
