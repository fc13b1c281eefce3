import nats

from shared.jetstream.natsd import EmbeddedNats


async def test_embedded_server_has_jetstream_and_keeps_data_across_restart(nats_server: EmbeddedNats) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.add_stream(name="KEEP", subjects=["keep.>"])
    await js.publish("keep.one", b"1")
    await nc.close()

    await nats_server.stop()
    await nats_server.start()

    nc = await nats.connect(nats_server.url)
    info = await nc.jetstream().stream_info("KEEP")
    await nc.close()
    assert info.state.messages == 1
