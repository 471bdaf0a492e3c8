//! # Denoising sensor rows over `embedded-hal` SPI
//!
//! How camera firmware feeds the N³Net core: a [`LineSensor`] reads rows of
//! 8-bit pixels over an `embedded-hal` 1.0 [`embedded_hal::spi::SpiDevice`],
//! and a [`Denoiser`] streams them through the network
//! ([`n3net_core::exec::stream::Stream`]) and hands each denoised row to a
//! callback as soon as it is final. Nothing allocates: the weights stay in
//! the blob (in flash), and every buffer comes from one workspace slice the
//! firmware owns, sized once by [`Denoiser::workspace_bytes`]. That size
//! depends on the row width, not on the frame height.
//!
//! ```
//! # use embedded_hal_mock::eh1::spi::{Mock, Transaction};
//! # use n3net_core::{Cnn, ConvLayer, Isa, Network, Weights};
//! use n3net_embedded_hal_example::{Denoiser, LineSensor, READ_LINE};
//!
//! // On a device: `let net = ModelBlob::parse(BLOB)?.network()?;` over a
//! // blob in flash. Here, a one-convolution network that halves the noisy
//! // image and adds it back.
//! # let (w, b) = ([0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0], [0.0f32]);
//! # let conv = ConvLayer { cin: 1, cout: 1, ksize: 3, relu: false, weight: Weights::F32(&w), bias: &b };
//! # let net = Network::new(&[Cnn::new(&[conv], true).unwrap()], &[]).unwrap();
//! let (height, width) = (2, 4);
//! // A static buffer on a device, sized on the host with the same call.
//! let mut workspace = [0u8; 4096];
//! assert!(Denoiser::workspace_bytes(&net, width)? <= workspace.len());
//! let mut denoiser = Denoiser::new(&net, height, width, 25.0, Isa::detect(), &mut workspace)?;
//!
//! // The sensor's answers for rows 0 and 1 (on a device: the HAL's SPI device).
//! # let row = |y: u8, pixels: Vec<u8>| [
//! #     Transaction::transaction_start(),
//! #     Transaction::write_vec(vec![READ_LINE, 0, y]),
//! #     Transaction::read_vec(pixels),
//! #     Transaction::transaction_end(),
//! # ];
//! # let spi = Mock::new(&[row(0, vec![10, 20, 30, 40]), row(1, vec![50, 60, 70, 80])].concat());
//! let mut sensor = LineSensor::new(spi);
//! let mut frame = [[0u8; 4]; 2];
//! denoiser.run(&mut sensor, |y, pixels| frame[y].copy_from_slice(pixels))?;
//! assert_eq!(frame, [[15, 30, 45, 60], [75, 90, 105, 120]]);
//! # sensor.release().done();
//! # Ok::<(), n3net_embedded_hal_example::Error<embedded_hal::spi::ErrorKind>>(())
//! ```
//!
//! The same code builds for a Cortex-M (`thumbv7em-none-eabihf`); see the
//! crate's README for the commands.
#![no_std]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod denoiser;
mod error;
mod sensor;

pub use denoiser::{to_u8, to_unit, Denoiser};
pub use error::Error;
pub use sensor::{LineSensor, READ_LINE};
