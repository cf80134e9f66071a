//! What tickets and prepared-statement handles carry: the statement itself and its bound
//! parameters, or the result of a change that already ran. The server keeps no state per
//! client or statement, so nothing grows with clients, a handle survives nothing it needs,
//! and a dropped client leaves nothing behind. A handle is the client's to forge: whatever it
//! holds is authorized again when used.

use std::io::Cursor;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use prost::Message;
use tonic::Status;

/// The largest result a change may hand back inside its ticket (counts and refresh reports
/// are tiny; a larger result is refused rather than stored).
const MAX_RESULT_BYTES: usize = 1 << 20;

/// A ticket's or prepared statement's contents.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Handle {
    /// The statement.
    #[prost(string, tag = "1")]
    pub sql: String,
    /// Parameter values bound to it: an Arrow IPC stream of one row, empty when none.
    #[prost(bytes = "vec", tag = "2")]
    pub params: Vec<u8>,
    /// When the statement already ran: its result as an Arrow IPC stream.
    #[prost(bytes = "vec", tag = "3")]
    pub result: Vec<u8>,
}

impl Handle {
    /// A statement to run when used.
    pub(crate) fn statement(sql: impl Into<String>) -> Self {
        Handle {
            sql: sql.into(),
            params: Vec::new(),
            result: Vec::new(),
        }
    }

    /// The result of a change that ran.
    pub(crate) fn done(schema: &Schema, batches: &[RecordBatch]) -> Result<Self, Status> {
        let result = to_ipc(schema, batches)?;
        if result.len() > MAX_RESULT_BYTES {
            return Err(Status::resource_exhausted(
                "the statement ran, but its result is too large to return; query it instead",
            ));
        }
        Ok(Handle {
            sql: String::new(),
            params: Vec::new(),
            result,
        })
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, Status> {
        Handle::decode(bytes).map_err(|_| Status::invalid_argument("malformed statement handle"))
    }

    /// The bound parameter rows, if any.
    pub(crate) fn parameter_batches(&self) -> Result<Option<Vec<RecordBatch>>, Status> {
        if self.params.is_empty() {
            return Ok(None);
        }
        Ok(Some(from_ipc(&self.params)?.1))
    }

    /// The result of a change that ran, if this is one.
    pub(crate) fn result(&self) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>, Status> {
        if self.result.is_empty() {
            return Ok(None);
        }
        from_ipc(&self.result).map(Some)
    }
}

/// Batches as an Arrow IPC stream.
pub(crate) fn to_ipc(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<u8>, Status> {
    let ipc = |e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string());
    let mut writer = StreamWriter::try_new(Vec::new(), schema).map_err(ipc)?;
    for batch in batches {
        writer.write(batch).map_err(ipc)?;
    }
    writer.into_inner().map_err(ipc)
}

fn from_ipc(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
    let malformed = |_| Status::invalid_argument("malformed Arrow data in a statement handle");
    let reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(malformed)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(malformed)?;
    Ok((schema, batches))
}
