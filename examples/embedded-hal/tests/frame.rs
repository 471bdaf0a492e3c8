//! The example end to end on the host: a frame read row by row through a
//! mocked SPI sensor, denoised, and compared with the core's stream run
//! directly on the same input; and every way it can fail without panicking.
#![forbid(unsafe_code)]

mod common;

use common::{
    aligned, clean_frame, expectations, noisy_frame, psnr, reference, SmallNet, HEIGHT, SIGMA,
    WIDTH,
};
use embedded_hal::spi::{self, ErrorType, Operation, SpiDevice};
use embedded_hal_mock::eh1::spi::Mock;
use n3net_core::{Cnn, ConvLayer, ErrorKind, Isa, ModelBlob, Network, Weights};
use n3net_embedded_hal_example::{Denoiser, Error, LineSensor, READ_LINE};

/// The project's default model (noise-conditioned grey N³Net) in q16.
const DEFAULT_Q16: &[u8] = include_bytes!("../../../models/n3net-gray-blind-q16.n3b");

/// Runs a [`Denoiser`] over `frame` read through a mock sensor that expects
/// exactly one `READ_LINE` transaction per row, top to bottom; returns the
/// rows the sink got, checking they come in order.
fn denoise_over_spi(net: &Network<'_>, frame: &[u8], isa: Isa) -> Vec<u8> {
    let mut ws = vec![0u8; Denoiser::workspace_bytes(net, WIDTH).expect("bytes")];
    let mut d = Denoiser::new(net, HEIGHT, WIDTH, SIGMA, isa, &mut ws).expect("denoiser");
    let mut sensor = LineSensor::new(Mock::new(&expectations(frame)));
    let mut out = Vec::new();
    d.run(&mut sensor, |y, pixels| {
        assert_eq!(y * WIDTH, out.len(), "rows in order");
        out.extend_from_slice(pixels);
    })
    .expect("run");
    sensor.release().done();
    assert_eq!(out.len(), HEIGHT * WIDTH);
    out
}

#[test]
fn small_network_over_spi_matches_the_stream() {
    let small = SmallNet::new(7);
    let net = small.network();
    let frame = noisy_frame(&clean_frame(), 1);
    let isa = Isa::detect();
    let got = denoise_over_spi(&net, &frame, isa);
    assert_eq!(got, reference(&net, &frame, SIGMA, isa));
    assert_ne!(got, frame, "the network changed the frame");
}

#[test]
fn default_q16_model_over_spi_matches_the_stream_and_denoises() {
    let (blob, at) = aligned(DEFAULT_Q16);
    let blob = ModelBlob::parse(&blob[at..]).expect("blob");
    let net = blob.network().expect("network");
    assert_eq!(net.cin(), 2, "the default model takes a noise map");
    let clean = clean_frame();
    let frame = noisy_frame(&clean, 2);
    let isa = Isa::detect();
    let got = denoise_over_spi(&net, &frame, isa);
    assert_eq!(got, reference(&net, &frame, SIGMA, isa));
    let (before, after) = (psnr(&frame, &clean), psnr(&got, &clean));
    assert!(
        after > before + 8.0,
        "PSNR {before:.2} dB noisy, {after:.2} dB denoised"
    );
}

#[test]
fn lines_pushed_one_by_one_come_out_before_the_frame_ends() {
    let small = SmallNet::new(8);
    let net = small.network();
    let frame = noisy_frame(&clean_frame(), 3);
    let isa = Isa::detect();
    let mut ws = vec![0u8; Denoiser::workspace_bytes(&net, WIDTH).unwrap()];
    let mut d = Denoiser::new(&net, HEIGHT, WIDTH, SIGMA, isa, &mut ws).unwrap();
    let mut out = Vec::new();
    let mut before_last = 0;
    for line in frame.chunks(WIDTH) {
        before_last = out.len() / WIDTH;
        d.push_line(line, |y, pixels| {
            assert_eq!(y * WIDTH, out.len(), "rows in order");
            out.extend_from_slice(pixels);
        })
        .unwrap();
    }
    assert!(
        before_last > 0,
        "rows were final before the last line was pushed"
    );
    assert_eq!(out, reference(&net, &frame, SIGMA, isa));
    let past = d.push_line(&frame[..WIDTH], |_, _| panic!("no row after the end"));
    assert_eq!(past.unwrap_err().kind(), ErrorKind::PastEnd);
}

/// A sensor bus whose transaction number `fail_at` (from 0) fails with
/// `Overrun`; embedded-hal-mock's SPI mock has no way to return an error.
/// It records the row of every transaction, the failed one included.
struct FlakyBus<'a> {
    frame: &'a [u8],
    fail_at: usize,
    rows: Vec<usize>,
}

impl ErrorType for FlakyBus<'_> {
    type Error = spi::ErrorKind;
}

impl SpiDevice for FlakyBus<'_> {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), spi::ErrorKind> {
        let [Operation::Write(&[READ_LINE, hi, lo]), Operation::Read(line)] = ops else {
            panic!("not a READ_LINE transaction");
        };
        let row = usize::from(u16::from_be_bytes([hi, lo]));
        self.rows.push(row);
        if self.rows.len() == self.fail_at + 1 {
            return Err(spi::ErrorKind::Overrun);
        }
        line.copy_from_slice(&self.frame[row * WIDTH..][..WIDTH]);
        Ok(())
    }
}

#[test]
fn spi_error_is_reported_and_the_frame_resumes() {
    let small = SmallNet::new(9);
    let net = small.network();
    let frame = noisy_frame(&clean_frame(), 4);
    let isa = Isa::detect();
    let mut ws = vec![0u8; Denoiser::workspace_bytes(&net, WIDTH).unwrap()];
    let mut d = Denoiser::new(&net, HEIGHT, WIDTH, SIGMA, isa, &mut ws).unwrap();
    let fail_at = 29;
    let mut sensor = LineSensor::new(FlakyBus {
        frame: &frame,
        fail_at,
        rows: Vec::new(),
    });
    let mut out = Vec::new();
    let err = d.run(&mut sensor, |_, pixels| out.extend_from_slice(pixels));
    assert_eq!(err, Err(Error::Spi(spi::ErrorKind::Overrun)));
    assert!(out.len() < HEIGHT * WIDTH);
    // The failed row was not pushed: running again reads it again and
    // finishes the frame as if nothing had happened.
    d.run(&mut sensor, |_, pixels| out.extend_from_slice(pixels))
        .expect("resume");
    assert_eq!(out, reference(&net, &frame, SIGMA, isa));
    let rows = sensor.release().rows;
    let want: Vec<usize> = (0..=fail_at).chain(fail_at..HEIGHT).collect();
    assert_eq!(rows, want);
}

#[test]
fn workspace_query_is_exact_at_any_alignment() {
    let small = SmallNet::new(10);
    let net = small.network();
    let need = Denoiser::workspace_bytes(&net, WIDTH).unwrap();
    let mut ws = vec![0u8; need + 64];
    for skip in 0..64 {
        let enough = Denoiser::new(
            &net,
            HEIGHT,
            WIDTH,
            SIGMA,
            Isa::Generic,
            &mut ws[skip..][..need],
        );
        assert!(enough.is_ok(), "offset {skip}");
        let short = Denoiser::new(
            &net,
            HEIGHT,
            WIDTH,
            SIGMA,
            Isa::Generic,
            &mut ws[skip..][..need - 1],
        );
        assert_eq!(
            short.err().map(|e| e.kind()),
            Some(ErrorKind::WorkspaceTooSmall),
            "offset {skip}"
        );
    }
    let empty = Denoiser::new(&net, HEIGHT, WIDTH, SIGMA, Isa::Generic, &mut []);
    assert_eq!(
        empty.err().map(|e| e.kind()),
        Some(ErrorKind::WorkspaceTooSmall)
    );
}

#[test]
fn bad_arguments_are_errors() {
    let small = SmallNet::new(11);
    let net = small.network();
    let mut ws = vec![0u8; Denoiser::workspace_bytes(&net, WIDTH).unwrap()];
    let kind = |height, width, sigma, ws: &mut [u8]| {
        Denoiser::new(&net, height, width, sigma, Isa::Generic, ws)
            .err()
            .map(|e| e.kind())
    };
    for sigma in [-1.0, f32::NAN, f32::INFINITY] {
        let got = kind(HEIGHT, WIDTH, sigma, &mut ws);
        assert_eq!(got, Some(ErrorKind::InvalidArgument), "σ {sigma}");
    }
    assert_eq!(
        kind(0, WIDTH, SIGMA, &mut ws),
        Some(ErrorKind::ImageTooSmall)
    );
    let zero = Denoiser::workspace_bytes(&net, 0).err().map(|e| e.kind());
    assert_eq!(zero, Some(ErrorKind::ImageTooSmall));

    let mut d = Denoiser::new(&net, HEIGHT, WIDTH, SIGMA, Isa::Generic, &mut ws).unwrap();
    let short = d.push_line(&[0; WIDTH - 1], |_, _| {});
    assert_eq!(short.unwrap_err().kind(), ErrorKind::BufferSize);

    // Not a grey denoiser: three input channels.
    let (w, b) = ([0.1f32; 27], [0.0f32]);
    let conv = ConvLayer {
        cin: 3,
        cout: 1,
        ksize: 3,
        relu: false,
        weight: Weights::F32(&w),
        bias: &b,
    };
    let rgb = Network::new(&[Cnn::new(&[conv], false).unwrap()], &[]).unwrap();
    let got = Denoiser::workspace_bytes(&rgb, WIDTH)
        .err()
        .map(|e| e.kind());
    assert_eq!(got, Some(ErrorKind::InvalidModel));
    let got = Denoiser::new(&rgb, HEIGHT, WIDTH, SIGMA, Isa::Generic, &mut ws).err();
    assert_eq!(got.map(|e| e.kind()), Some(ErrorKind::InvalidModel));
}
