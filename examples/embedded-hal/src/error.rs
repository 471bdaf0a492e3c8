//! The one error type of the example: the bus or the network.

use core::fmt;

/// What can go wrong between the sensor and the denoised rows.
///
/// Generic over the SPI error `E` (the `SpiDevice::Error` of the bus), so a
/// driver keeps the bus's own error for the firmware to inspect (through
/// `embedded_hal::spi::Error::kind`); the network's errors keep their
/// [`n3net_core::ErrorKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The SPI transaction with the sensor failed.
    Spi(E),
    /// The network refused the geometry, the workspace or a row (see
    /// [`n3net_core::Error::kind`]).
    Core(n3net_core::Error),
}

impl<E> From<n3net_core::Error> for Error<E> {
    fn from(e: n3net_core::Error) -> Self {
        Error::Core(e)
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spi(e) => write!(f, "sensor SPI transaction failed: {e:?}"),
            Error::Core(e) => write!(f, "denoiser: {e}"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Spi(_) => None,
            Error::Core(e) => Some(e),
        }
    }
}
