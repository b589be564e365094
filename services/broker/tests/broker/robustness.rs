//! Bad input closes one connection, never the broker.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{producer, send, spawn_broker};

/// Writes one length-prefixed frame.
async fn write_frame(stream: &mut TcpStream, body: &[u8]) {
    let length = i32::try_from(body.len()).expect("small frame");
    stream
        .write_all(&length.to_be_bytes())
        .await
        .expect("write length");
    stream.write_all(body).await.expect("write body");
}

/// Reads until the broker closes the connection; fails if it answers or stays open.
async fn assert_closed(stream: &mut TcpStream) {
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .expect("the broker closes the connection");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected a close, got {read:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_close_their_connection_and_the_broker_serves_on() {
    let broker = spawn_broker(&[("sturdy", 1)]).await;
    let bootstrap = broker.bootstrap_servers();

    // An API key that does not exist.
    let mut unknown = TcpStream::connect(&bootstrap).await.unwrap();
    write_frame(&mut unknown, &[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]).await;
    assert_closed(&mut unknown).await;

    // A frame too short to hold a header.
    let mut short = TcpStream::connect(&bootstrap).await.unwrap();
    write_frame(&mut short, &[0, 3, 0]).await;
    assert_closed(&mut short).await;

    // A Produce whose body is garbage.
    let mut garbage = TcpStream::connect(&bootstrap).await.unwrap();
    write_frame(
        &mut garbage,
        &[0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0xde, 0xad, 0xbe, 0xef],
    )
    .await;
    assert_closed(&mut garbage).await;

    // An API this broker does not implement (OffsetForLeaderEpoch v2).
    let mut unimplemented = TcpStream::connect(&bootstrap).await.unwrap();
    write_frame(&mut unimplemented, &[0, 23, 0, 2, 0, 0, 0, 3, 0xff, 0xff]).await;
    assert_closed(&mut unimplemented).await;

    // A negative length prefix.
    let mut negative = TcpStream::connect(&bootstrap).await.unwrap();
    negative.write_all(&(-5i32).to_be_bytes()).await.unwrap();
    assert_closed(&mut negative).await;

    // The broker is still there for well-behaved clients.
    let client = producer(&bootstrap, true);
    assert_eq!(send(&client, "sturdy", 1).await, (0, 0));
    drop(client);
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_versions_request_of_an_unknown_version_gets_a_v0_answer_with_the_table() {
    let broker = spawn_broker(&[]).await;
    let mut stream = TcpStream::connect(broker.bootstrap_servers())
        .await
        .unwrap();
    // ApiVersions v99, correlation id 7, then bytes we cannot be expected to understand.
    write_frame(&mut stream, &[0, 18, 0, 99, 0, 0, 0, 7, 1, 2, 3]).await;
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await.unwrap();
    let mut body = vec![0u8; usize::try_from(i32::from_be_bytes(length)).unwrap()];
    stream.read_exact(&mut body).await.unwrap();
    assert_eq!(
        i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        7,
        "correlation id"
    );
    assert_eq!(
        i16::from_be_bytes([body[4], body[5]]),
        35,
        "UNSUPPORTED_VERSION"
    );
    let entries = i32::from_be_bytes([body[6], body[7], body[8], body[9]]);
    assert!(
        entries >= 10,
        "the table of supported APIs follows ({entries} entries)"
    );
    broker.stop().await.expect("broker stops");
}
